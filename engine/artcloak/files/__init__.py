"""What reads and writes image files: formats, bit depth, PNG chunks and the "do not train" metadata."""
