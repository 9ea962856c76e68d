"""Surrogate encoders: architecture, registry of published weights, and a verifying loader."""
from .loader import available_models, find_file, load_decoder, load_encoder, resolve_models, search_path
from .registry import MODELS, ModelSpec

__all__ = ["MODELS", "ModelSpec", "available_models", "find_file", "load_decoder", "load_encoder",
           "resolve_models", "search_path"]
