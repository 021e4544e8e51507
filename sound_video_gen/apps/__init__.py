"What users run: figure helpers now; the sound-to-video pipeline, editing and widgets as they land."
