"""Training: demo data simulation, training sets from Feast, LightGBM models and model folders."""
