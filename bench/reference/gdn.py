"""GDN of crates/vigil-models/src/detectors/gdn.rs in PyTorch, for vigil's speed comparison, written with
dense tensors (as vigil is) instead of torch_geometric's message passing: embeddings of 64 per
metric, each node's neighbours = itself + its 4 most cosine-similar nodes (recomputed every
step, not differentiated), graph attention over a 5-step window (W: 5 -> 64, no bias; logits
LeakyReLU_0.2 of a_i.[Wx_i, v_i] + a_j.[Wx_j, v_j]), bias, batch norm, ReLU; then z * v, batch
norm, ReLU, dropout 0.2, dense 64 -> 1 per node. MSE on the next value, Adam lr 1e-3, batch 32.
Scoring: one front-padded window per point, the signed forecast error per metric, in chunks
of 1,024 windows (vigil's chunk size). PyTorch's timing stops at the errors; vigil's also covers
the normalisation and smoothing after them (a few element-wise passes), which favours PyTorch.

    python3 bench/reference/gdn.py --data smd_like.npy --epochs 3
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import median_seconds, parse_args, report, setup, timed

WINDOW, DIM, TOP_K, DROPOUT, BATCH, SCORE_CHUNK = 5, 64, 5, 0.2, 32, 1024


class Gdn(nn.Module):
    def __init__(self, nodes):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(nodes, DIM).uniform_(-DIM ** -0.5, DIM ** -0.5))
        self.lin = nn.Linear(WINDOW, DIM, bias=False)
        bound = (6.0 / (1 + DIM)) ** 0.5
        self.att_i = nn.Parameter(torch.empty(DIM).uniform_(-bound, bound))
        self.att_j = nn.Parameter(torch.empty(DIM).uniform_(-bound, bound))
        self.att_em_i = nn.Parameter(torch.zeros(DIM))
        self.att_em_j = nn.Parameter(torch.zeros(DIM))
        self.bias = nn.Parameter(torch.zeros(DIM))
        self.norm = nn.BatchNorm1d(DIM)
        self.out_norm = nn.BatchNorm1d(DIM)
        self.dropout = nn.Dropout(DROPOUT)
        self.head = nn.Linear(DIM, 1)

    def neighbours(self):
        with torch.no_grad():
            v = F.normalize(self.embedding, dim=1)
            cos = v @ v.T
            cos.fill_diagonal_(-float("inf"))
            others = cos.topk(TOP_K - 1, dim=1).indices
            own = torch.arange(len(v)).unsqueeze(1)
            return torch.cat([own, others], dim=1).flatten()

    def forward(self, x, nbr):
        b, n, _ = x.shape
        emb = self.embedding
        h = self.lin(x)
        receiving = (h @ self.att_i + emb @ self.att_em_i).unsqueeze(2)
        sending = (h @ self.att_j + emb @ self.att_em_j)[:, nbr].view(b, n, TOP_K)
        alpha = F.softmax(F.leaky_relu(receiving + sending, 0.2), dim=2)
        z = (alpha.unsqueeze(3) * h[:, nbr].view(b, n, TOP_K, DIM)).sum(2) + self.bias
        z = F.relu(self.norm(z.reshape(b * n, DIM))).view(b, n, DIM)
        out = self.dropout(F.relu(self.out_norm((z * emb).reshape(b * n, DIM))))
        return self.head(out).view(b, n)


def main():
    args = parse_args(__doc__)
    x = setup(args)
    series = torch.from_numpy(x)
    view = series.unfold(0, WINDOW + 1, 1)  # [n, metrics, window + 1], no copy
    model = Gdn(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch():
        model.train()
        for idx in torch.randperm(len(view)).split(BATCH):
            if len(idx) < 2:
                continue
            b = view[idx]
            loss = ((model(b[:, :, :-1], model.neighbours()) - b[:, :, -1]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    seconds = [timed(epoch)[1] for _ in range(args.epochs)]

    padded = torch.cat([series[:1].repeat(WINDOW, 1), series])
    test = padded.unfold(0, WINDOW + 1, 1)

    def score():
        model.eval()
        with torch.no_grad():
            nbr = model.neighbours()
            return torch.cat([model(b[:, :, :-1], nbr) - b[:, :, -1]
                              for b in test.split(SCORE_CHUNK)])

    score_seconds = median_seconds(score)
    report("gdn", seconds, score_seconds, len(test))


if __name__ == "__main__":
    main()
