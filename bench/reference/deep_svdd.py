"""Deep SVDD of crates/vigil-models/src/detectors/deep_svdd.rs in PyTorch, for vigil's speed comparison:
flattened windows (10 steps x metrics) -> 128 -> 64 -> 32, ReLU between, no biases; centre =
mean representation of the training windows (components within 0.1 of zero moved to +-0.1);
loss = mean squared distance to the centre; Adam lr 1e-4, weight decay 1e-6, batch 200.
Scoring does what vigil's does: the squared distance of each point's front-padded window and
its gradient with respect to the window, shared out per metric as |gradient x (x - mean)|.

    python3 bench/reference/deep_svdd.py --data smd_like.npy --epochs 3
"""
import torch
import torch.nn as nn

from common import median_seconds, padded_windows, parse_args, report, setup, timed, windows

WINDOW, HIDDEN, REPRESENTATION, BATCH = 10, (128, 64), 32, 200


def main():
    args = parse_args(__doc__)
    x = setup(args)
    train = windows(x, WINDOW)
    d, m = train.shape[1], x.shape[1]
    sizes = [d, *HIDDEN, REPRESENTATION]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b, bias=False))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    with torch.no_grad():
        centre = torch.cat([net(b) for b in train.split(4096)]).mean(0)
        small = centre.abs() < 0.1
        centre[small] = torch.where(centre[small] < 0, -0.1, 0.1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-6)

    def epoch():
        for idx in torch.randperm(len(train)).split(BATCH):
            loss = ((net(train[idx]) - centre) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]
    test = padded_windows(x, WINDOW)
    means = torch.from_numpy(x.mean(0))
    for p in net.parameters():
        p.requires_grad_(False)

    def score():
        out = []
        for b in test.split(4096):
            b = b.clone().requires_grad_(True)
            s = ((net(b) - centre) ** 2).sum(1)
            (g,) = torch.autograd.grad(s.sum(), b)
            share = (g * (b.detach() - means.repeat(WINDOW))).abs().view(len(b), WINDOW, m).sum(1)
            out.append(share / share.sum(1, keepdim=True) * s.detach()[:, None])
        return torch.cat(out)

    score_seconds = median_seconds(score)
    report("deep-svdd", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
