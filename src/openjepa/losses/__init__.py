"""Objectives and anti-collapse regularisers: small pure functions on embeddings."""
