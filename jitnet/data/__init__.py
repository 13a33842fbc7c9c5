"""Datasets: MNIST's IDX files (:mod:`~jitnet.data.idx`, :mod:`~jitnet.data.datasets`), Keras-style
.npz archives, CSV/TSV/Parquet tables, labels with names and the stratified split, behind one
:func:`jitnet.load_data` (:mod:`~jitnet.data.loading`); your own digit images
(:mod:`~jitnet.data.images`). ``mnist/`` holds the four shipped MNIST files."""
