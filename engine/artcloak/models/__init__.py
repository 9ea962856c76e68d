"""Surrogate autoencoders: architecture (taesd), registry of published weights, a verifying loader, and
the fast measuring forwards (runners: onnxruntime, else torch)."""
from .loader import available_models, find_file, load_decoder, load_encoder, resolve_models, search_path
from .registry import MODELS, ModelSpec

__all__ = ["MODELS", "ModelSpec", "available_models", "find_file", "load_decoder", "load_encoder",
           "resolve_models", "search_path"]
