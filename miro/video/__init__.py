"""Video for style and dream: read and write clips with their sound, optical flow, and the
temporal blend that keeps a frame-by-frame network from flickering.

Plain torch, OpenCV and imageio-ffmpeg. Frames are ``(3, H, W)`` float RGB in [0, 1], as images
are everywhere in miro; flows ``(H, W, 2)`` in pixels.

Example::

    from miro.video import TemporalBlend, VideoWriter, probe_video, read_frames

    info, temporal = probe_video("clip.mp4"), TemporalBlend()
    with VideoWriter("out.mp4", info.fps, audio_from=info) as writer:
        for frame in read_frames("clip.mp4", max_size=512):
            writer.write(temporal.keep(frame, temporal.blend(frame, paint(frame))))
"""

from miro.video.errors import UnreadableVideoError, VideoSettingsError
from miro.video.flow import FlowEstimator, Motion, estimate_motion, reliable, warp
from miro.video.io import VideoInfo, VideoWriter, is_video, probe_video, read_frames, write_video
from miro.video.temporal import TemporalBlend, TemporalSettings, blend_warped, warping_error

__all__ = [
    "FlowEstimator",
    "Motion",
    "TemporalBlend",
    "TemporalSettings",
    "UnreadableVideoError",
    "VideoInfo",
    "VideoSettingsError",
    "VideoWriter",
    "blend_warped",
    "estimate_motion",
    "is_video",
    "probe_video",
    "read_frames",
    "reliable",
    "warp",
    "warping_error",
    "write_video",
]
