"""The Feast repository: definitions.py and the feature_store YAML files, nothing else."""
