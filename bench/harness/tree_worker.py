"""The worker of :mod:`harness.trees`: imports jitnet from the tree first on its path and answers
JSON requests, one per line on stdin, with one JSON line each on stdout.

    {"op": "hello"}                                    -> {"jitnet": path of the package}
    {"op": "setup", "key", "sizes", "dtype", "samples", "network"[, "distort"]}
                                                       -> {"n_params": ...}
    {"op": "epoch", "key", "samples", "rate", "threads", "options", "evaluate"}
                                                       -> {"wall", "cpu", "loss", "digest"[,
                                                           "test_error"]}

Only jitnet's public API is used (``load_mnist``, ``Network``, ``targets``, ``train_epoch``,
``velocity``, ``evaluate``), so any revision that has it can be timed. Every epoch starts from
the network's starting parameters (momentum's velocity cleared). With ``distort`` (the fields
of a ``jitnet.Distortion``) every epoch trains on the same distorted samples: the plan and the
draws are made once, in ``setup``. Anything else the process
prints goes to stderr.
"""

import hashlib
import json
import os
import sys
import time


def main():
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (Numba's warnings, progress) must not reach the answers
    import numpy as np

    import jitnet

    data = {}
    networks = {}

    def mnist():
        if not data:
            data["train"], data["test"] = jitnet.load_mnist()
        return data["train"], data["test"]

    def hello(request):
        return {"jitnet": os.path.dirname(os.path.abspath(jitnet.__file__))}

    def setup(request):
        train, _ = mnist()
        net = jitnet.Network(request["sizes"], dtype=request["dtype"], seed=0,
                             **request["network"])
        n = request["samples"]
        X = train.images[:n]
        distorted = {}
        if request.get("distort"):  # the plan and the draws of one epoch, made once
            from jitnet.engine.distortion import DistortionPlan

            plan = DistortionPlan(jitnet.Distortion(**request["distort"]), (28, 28),
                                  seed=np.random.SeedSequence(0))
            distorted = {"distortion": plan,
                         "draws": plan.draw_epoch(np.random.default_rng(1), n)}
        networks[request["key"]] = (net, net.params.copy(), X, net.targets(train.labels[:n]),
                                    distorted)
        return {"n_params": int(net.params.size)}

    def epoch(request):
        net, start, X, T, distorted = networks[request["key"]]
        net.params[...] = start
        net.velocity = None
        n = request["samples"]
        options = dict(request["options"])
        if distorted:
            options.update(distortion=distorted["distortion"], draws=distorted["draws"][:n])
        wall, cpu = time.perf_counter(), time.thread_time()
        loss = net.train_epoch(X[:n], T[:n], request["rate"], threads=request["threads"],
                               **options)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        answer = {"wall": wall, "cpu": cpu, "loss": float(loss),
                  "digest": hashlib.sha1(np.ascontiguousarray(net.params).tobytes()).hexdigest()}
        if request.get("evaluate"):
            _, test = mnist()
            answer["test_error"] = float(net.evaluate(test.images, test.labels))
        return answer

    handlers = {"hello": hello, "setup": setup, "epoch": epoch}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = handlers[request["op"]](request)
        except Exception as error:  # noqa: BLE001 -- reported to the parent in one line
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
