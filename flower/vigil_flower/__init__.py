"""vigil's federated training on Flower: MTAD-FL's LGF-PKT, FedAvg and FedTL, with vigil's
detectors trained on every node through its Python package. See docs/federated.md."""
