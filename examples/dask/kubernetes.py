"""A Dask cluster on Kubernetes for prodigy's map agents, with dask-kubernetes' operator
(documentation: docs/dask.md; not run by the tests).

    pip install dask-kubernetes
    python examples/dask/kubernetes.py      # prints the scheduler's address, keeps it up

then point prodigy at it (from where the scheduler's service is reachable):

    prodigyctl config set executor.kind dask
    prodigyctl config set executor.address tcp://prodigy-agents-scheduler.default:8786

The workers run the image of examples/dask/Dockerfile; the Claude API key comes from a
Kubernetes secret, never from the job.
"""

from dask_kubernetes.operator import KubeCluster, make_cluster_spec

IMAGE = "registry.example/prodigy-worker:0.1.0"  # examples/dask/Dockerfile, pushed

spec = make_cluster_spec(
    name="prodigy-agents",
    image=IMAGE,
    n_workers=4,
    resources={"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
    worker_command="dask worker --nthreads 2 --no-dashboard",
)
worker = spec["spec"]["worker"]["spec"]["containers"][0]
worker["env"] = [
    *worker.get("env", []),
    {
        "name": "ANTHROPIC_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "anthropic", "key": "api-key"}},
    },
]

if __name__ == "__main__":
    cluster = KubeCluster(custom_cluster_spec=spec)
    cluster.adapt(minimum=1, maximum=20)  # more workers while a map phase has tasks
    print(cluster.scheduler_address)
    input("the cluster runs until you press Enter\n")
    cluster.close()
