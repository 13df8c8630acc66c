import pytest


@pytest.fixture
def redis_down(app):
    """Every Redis command fails as if the server were down (cache and queue alike)."""
    import redis

    pool = app.extensions["redis"].connection_pool
    original = pool.get_connection

    def refuse(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused.")

    pool.get_connection = refuse
    yield
    pool.get_connection = original
