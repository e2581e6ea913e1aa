"""Provider clients behind small capability interfaces (text, music, image)."""
