"""The local GGUF runtime: loading with offload settings, fit estimate, streaming with cancel."""
