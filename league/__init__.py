"""League service: players, snapshots, matchmaking, Elo ratings, SQLite, gRPC.

Imports nothing else of the project. Entry points: `league.server.LeagueServer`,
`league.client.LeagueClient`, `league.ratings.fit_elo`, `league.table.ratings_table`.
"""
