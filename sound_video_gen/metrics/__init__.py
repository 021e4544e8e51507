"Evaluation: distances and IS, detectors, audio-visual scores, baselines and SynthScapes-Bench."
