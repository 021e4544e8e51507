"The shared image-text-audio space: an open_clip wrapper and the audio encoder F_a aligned to it."
