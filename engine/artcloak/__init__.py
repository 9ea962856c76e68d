"""artcloak: protect images from AI style mimicry by moving what diffusion autoencoders see."""
from .errors import ArtcloakError, Cancelled, InputError, ModelError
from .params import Params
from .protect import Result, protect

__version__ = "0.1.0"
__all__ = ["ArtcloakError", "Cancelled", "InputError", "ModelError", "Params", "Result", "protect"]
