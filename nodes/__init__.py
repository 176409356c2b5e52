"""ComfyUI glue: thin V3 nodes over sampling/ and rewards/ (no maths here)."""
