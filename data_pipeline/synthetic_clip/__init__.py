"""``python -m data_pipeline.synthetic_clip``: the command of ``data_pipeline.synthetic.clip``."""
