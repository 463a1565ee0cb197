"""Ready models that use attention, one family per file, plus a registry of presets."""
