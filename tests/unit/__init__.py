"""Unit tier: no server, no Feast apply, no training of the effort models; seconds in all."""
