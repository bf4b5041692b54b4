"""prosv: prompt-only steering vectors, trained jointly (factor and direction), placed and evaluated."""

__version__ = "0.1.0"
