"""Wire and event schemas, their versions and upcasters, validation limits and error codes.

Plain Python and msgspec only: nothing here may import Django or any other Tidelog package.
"""
