"""Rollout workers and the wire between them and learners (`spo sample --serve`, `spo train --async`).

    worker.py   RolloutWorker: samples with the newest weights, judges inline, bounded queue, spool
    server.py   the HTTP server around it (stdlib), its wire protocol, body limits
    client.py   WorkerClient (one worker) and WorkerLinks (the learner's links to all workers:
                weights out, rollouts in, failures and back-off)
    weights.py  safetensors payloads: encode, decode, check they fit a model, apply
    auth.py     loopback by default; a shared token (constant-time compare) for anything else

The design follows the paper's Sec 3.2 (workers sample continuously, trainers pull judged
trajectories and push weights every model_update_interval steps); the mechanics borrow from
public systems (TRL's vllm-serve: an HTTP side channel for weights; prime-rl: weights through a
shared filesystem and a bound on how many steps behind a rollout may be; PipelineRL: weights
arriving while sampling goes on) but are our own, and take no dependency beyond the stdlib.
"""
