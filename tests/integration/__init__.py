"""Integration tier: real Feast stores (SQLite, a real redis-server) and small trained models."""
