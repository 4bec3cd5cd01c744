from tests.tenancy.helpers import fast_passwords

__all__ = ["fast_passwords"]
