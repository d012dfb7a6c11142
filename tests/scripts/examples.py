"""Four complete training programs in the style of PyTorch's official examples (mnist, word_language_model,
dcgan, regression). Each is written once, as a function of the library module ``torch`` — call it with
``torch`` or with ``deepgrad``: only the import differs. Randomness that the two libraries draw differently
(initial weights, noise, shuffles) comes in from outside: the weights are copied from torch's model into
deepgrad's after the program's own initialisation ran, the data and noise are NumPy arrays."""

from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------- MNIST (examples/mnist/main.py)
def mnist(torch, images: np.ndarray, labels: np.ndarray, *, steps: int, dropout: float, weights=None):
    """A small CNN on 8x8 digits with Adadelta and StepLR, as the mnist example trains on 28x28 ones."""
    nn, F = torch.nn, torch.nn.functional
    optim = torch.optim
    from_np = torch.from_numpy

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, 1)
            self.conv2 = nn.Conv2d(8, 16, 3, 1)
            self.dropout1 = nn.Dropout(dropout / 2)
            self.dropout2 = nn.Dropout(dropout)
            self.fc1 = nn.Linear(64, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = F.relu(x)
            x = self.conv2(x)
            x = F.relu(x)
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = self.fc1(x)
            x = F.relu(x)
            x = self.dropout2(x)
            x = self.fc2(x)
            return F.log_softmax(x, dim=1)

    model = Net()
    if weights is not None:
        model.load_state_dict(weights(torch))
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    losses = []
    batch = 32
    for _epoch in range(2):
        model.train()
        for batch_idx in range(steps):
            lo = (batch_idx * batch) % (len(images) - batch)
            data = from_np(images[lo:lo + batch]).unsqueeze(1)
            target = from_np(labels[lo:lo + batch])
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            data, target = from_np(images[-64:]).unsqueeze(1), from_np(labels[-64:])
            output = model(data)
            losses.append(F.nll_loss(output, target, reduction="sum").item())
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
        losses.append(float(correct))
    return losses, model


# ----------------------------------------------------------------------------- word language model
def word_language_model(torch, corpus: np.ndarray, ntokens: int, *, steps: int, weights=None):
    """An LSTM language model trained with truncated BPTT, ``narrow``-batched data, repackaged hidden states,
    gradient clipping and a manual ``p.data.add_(p.grad, alpha=-lr)`` update (examples/word_language_model)."""
    nn, F = torch.nn, torch.nn.functional

    class RNNModel(nn.Module):
        def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0):
            super().__init__()
            self.ntoken = ntoken
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(ntoken, ninp)
            self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
            self.decoder = nn.Linear(nhid, ntoken)
            self.init_weights()
            self.nhid, self.nlayers = nhid, nlayers

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.encoder.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, input, hidden):
            emb = self.drop(self.encoder(input))
            self.rnn.flatten_parameters()
            output, hidden = self.rnn(emb, hidden)
            output = self.drop(output)
            decoded = self.decoder(output)
            decoded = decoded.view(-1, self.ntoken)
            return F.log_softmax(decoded, dim=1), hidden

        def init_hidden(self, bsz):
            weight = next(self.parameters())
            return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))

    def batchify(data, bsz):
        nbatch = data.size(0) // bsz
        data = data.narrow(0, 0, nbatch * bsz)
        return data.view(bsz, -1).t().contiguous()

    bptt = 5

    def get_batch(source, i):
        seq_len = min(bptt, len(source) - 1 - i)
        data = source[i:i + seq_len]
        target = source[i + 1:i + 1 + seq_len].view(-1)
        return data, target

    def repackage_hidden(h):
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(repackage_hidden(v) for v in h)

    train_data = batchify(torch.from_numpy(corpus), 4)
    model = RNNModel(ntokens, 8, 12, 2)
    if weights is not None:
        model.load_state_dict(weights(torch))
    criterion = nn.NLLLoss()
    lr, clip = 2.0, 0.25
    losses = []
    model.train()
    hidden = model.init_hidden(4)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        if batch == steps:
            break
        data, targets = get_batch(train_data, i)
        hidden = repackage_hidden(hidden)
        model.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    if losses:
        losses.append(math.exp(losses[-1]))  # the example prints the perplexity
    return losses, model


# ----------------------------------------------------------------------------- DCGAN (examples/dcgan/main.py)
def dcgan(torch, real_images: np.ndarray, noise: np.ndarray, *, weights=None):
    """DCGAN on 16x16 digits: the example's generator/discriminator stacks, ``weights_init`` through ``.data``,
    BCELoss, Adam(0.0002, betas=(0.5, 0.999)), one D and one G update per batch."""
    nn = torch.nn
    nz, ngf, ndf, nc = noise.shape[2], 8, 8, 1

    def weights_init(m):
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            m.weight.data.normal_(0.0, 0.02)
        elif classname.find("BatchNorm") != -1:
            m.weight.data.normal_(1.0, 0.02)
            m.bias.data.fill_(0)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False),
                nn.BatchNorm2d(ngf * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
                nn.Tanh(),
            )

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * 2),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
                nn.Sigmoid(),
            )

        def forward(self, input):
            return self.main(input).view(-1, 1).squeeze(1)

    netG, netD = Generator(), Discriminator()
    netG.apply(weights_init)
    netD.apply(weights_init)
    if weights is not None:
        netG.load_state_dict(weights(torch, "G"))
        netD.load_state_dict(weights(torch, "D"))
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    losses = []
    batch = 16
    for i in range(len(noise)):
        real = torch.nn.functional.interpolate(torch.from_numpy(real_images[i * batch:(i + 1) * batch]).unsqueeze(1),
                                               scale_factor=2, mode="bilinear", align_corners=False)
        netD.zero_grad()
        label = torch.full((batch,), real_label, dtype=real.dtype)
        output = netD(real)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        fake = netG(torch.from_numpy(noise[i]))
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        errD = errD_real + errD_fake
        optimizerD.step()
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        optimizerG.step()
        losses += [errD.item(), errG.item(), D_x]
    return losses, (netG, netD)


# ----------------------------------------------------------------------------- regression (examples/regression)
def regression(torch, x: np.ndarray, *, steps: int, weights=None):
    """Fit a polynomial with one Linear layer, updating ``param.data`` by hand (examples/regression/main.py)."""
    F = torch.nn.functional
    POLY_DEGREE = 4
    W_target = torch.tensor([[0.5], [-1.0], [0.3], [0.2]])
    b_target = torch.tensor([0.7])

    def make_features(x):
        x = x.unsqueeze(1)
        return torch.cat([x ** i for i in range(1, POLY_DEGREE + 1)], 1)

    def f(x):
        return x.mm(W_target) + b_target.item()

    fc = torch.nn.Linear(W_target.size(0), 1)
    if weights is not None:
        fc.load_state_dict(weights(torch))
    losses = []
    for batch_idx in range(steps):
        batch_x = make_features(torch.from_numpy(x[batch_idx]))
        batch_y = f(batch_x)
        fc.zero_grad()
        output = F.smooth_l1_loss(fc(batch_x), batch_y)
        loss = output.item()
        output.backward()
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)
        losses.append(loss)
    return losses, fc
