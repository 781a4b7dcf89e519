"""Alembic migrations of the results database, shipped inside the package for installed apps."""
