"Datasets: SynthScapes, the clip loader and video I/O, and Landscape / Sub-URMP tooling."
