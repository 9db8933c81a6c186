"""The gateway's scripts: the Docker-free dev stack, the compose labels -> Traefik file-provider translation, and
the service scaffolding. Run them as modules from the repository root (`uv run python -m scripts.dev`)."""
