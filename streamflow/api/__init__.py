"""The public face: App, actors, canvases and their composition, workflow handles."""
