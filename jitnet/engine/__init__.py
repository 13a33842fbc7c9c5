"""The JIT engine, the layer every other one builds on (it imports only :mod:`jitnet.io`).

Compiled: :mod:`~jitnet.engine.kernels` (the one per-sample step: tutorial Eq. 1-5, over the
whole first layer or a thread's column block), :mod:`~jitnet.engine.epochs` (the epoch and
inference loops), :mod:`~jitnet.engine.parallel` and :mod:`~jitnet.engine.sync` (threads and
their barrier), :mod:`~jitnet.engine.activations`, :mod:`~jitnet.engine.distort_kernels`; their
buffers and layout legend in :mod:`~jitnet.engine.buffers`, Numba's options in
:mod:`~jitnet.engine.jit`. Python: :class:`~jitnet.engine.network.Network` (its memory in
:mod:`~jitnet.engine.layout`, its training in :mod:`~jitnet.engine.training`, its argument checks
in :mod:`~jitnet.engine.inputs` and :mod:`~jitnet.engine.checks`), components and schedules by
name, distortions, standardisation, the model file, :class:`~jitnet.engine.committee.Committee`.
"""
