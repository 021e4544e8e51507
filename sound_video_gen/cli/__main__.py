"`python -m sound_video_gen.cli`: the same as the `sound-video-gen` command."
from sound_video_gen.cli import main

main()
