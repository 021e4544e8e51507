"Image generators: the shared NVlabs ops, StyleGAN3 (T, R), StyleGAN2, safe loading of NVlabs pickles, and the factory (named configs, safetensors save/load)."
