"""One member of the PyTorch peer of bench/allreduce: torch.distributed all_reduce over Gloo on 127.0.0.1, the same
float32 sizes and repetitions as the Kiln members; prints one RESULT line like AllReduceBench."""
import sys
import time
import zlib

import torch
import torch.distributed as dist


def main():
    rank, world, port, floats, reps, warmup = (int(a) for a in sys.argv[1:7])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    gen = torch.Generator().manual_seed(1000 + rank)
    base = torch.rand(floats, generator=gen) * 2 - 1
    times = []
    crcs = set()
    for i in range(warmup + reps):
        v = base.clone()
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(v)
        v /= world
        t = time.perf_counter() - t0
        crcs.add(zlib.crc32(v.numpy().tobytes()))
        if i >= warmup:
            times.append(t)
    times.sort()
    print(f"RESULT rank={rank} world={world} floats={floats} algorithm=GLOO encrypt=False bytes=-1 "
          f"median_ms={times[len(times) // 2] * 1e3:.3f} best_ms={times[0] * 1e3:.3f} "
          f"crc={min(crcs):08x} stable={len(crcs) == 1}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
