"""hardstack: hardened AI environments on AWS and Kubernetes as Pulumi blueprints, verified before apply."""

__version__ = "0.1.0"
