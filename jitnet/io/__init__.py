"""Files, the bottom layer: atomic writes (:mod:`~jitnet.io.atomic`), the checked ``.npy`` header
and ``.npz`` readers that refuse a claim the file's bytes cannot back before allocating
(:mod:`~jitnet.io.npy`, :mod:`~jitnet.io.npzfile`), the ONNX graph builder
(:mod:`~jitnet.io.onnx_export`) and the errors every reader above raises
(:mod:`~jitnet.io.errors`). Imports nothing else of jitnet."""
