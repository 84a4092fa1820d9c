"""The Management API: Kinde-compatible paths under ``/api/v1`` guarded by M2M scopes."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")

__all__ = ["router"]
