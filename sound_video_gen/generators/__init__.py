"Image generators: StyleGAN3 (T, R), StyleGAN2, safe loading of NVlabs pickles, and safetensors save/load."
