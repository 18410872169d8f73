"""Orchestration state in SQLite; the only module that speaks SQL is store.sqlite."""
