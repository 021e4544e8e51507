"The sound-guided video model: E_a, the hierarchical recurrent block, discriminators, losses and SSVG itself."
