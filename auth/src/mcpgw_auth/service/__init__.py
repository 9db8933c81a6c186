"""The use cases between the web routers and the Store: the only callers of the Store, and the one place secrets
are hashed before they are kept."""
