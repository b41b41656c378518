# Rebuild the bundled models in models/ from fixed seeds.
#
#   make -f models.mk PY=.venv/bin/python            # every model, one after another
#   make -f models.mk PY=.venv/bin/python -j2        # two at a time (2 cores)
#   make -f models.mk PY=.venv/bin/python cgan       # just one
#   make -f models.mk PY=.venv/bin/python eval       # judge the bundled models
#
# Each model is `gan-train fit` into $(RUNS)/NAME, then `gan-train export` to
# $(MODELS)/NAME/1. Runs are seeded and use $(THREADS) CPU threads each; with
# the same THREADS on the same kind of CPU a rebuild is bit-identical (other
# thread counts or CPUs change float rounding, so the models differ slightly
# but train the same way). The classifier that judges them is shipped in
# training/gan_training/assets/; `classifier` retrains it from its seed.

PY ?= .venv/bin/python
MODELS ?= models
RUNS ?= runs/bundled
THREADS ?= 1
DEVICE ?= cpu
VERSION ?= 1
EVAL_DIR ?= docs/zoo

TRAIN := $(PY) -m gan_training.cli
FIT := $(TRAIN) fit --dataset mnist --device $(DEVICE) --threads $(THREADS) --no-progress
EXPORT = $(TRAIN) export $(RUNS)/$@ --repo $(MODELS) --name $@ --version $(VERSION) --overwrite

# The four headline models are full width (32) with a 100-d z.
# dcgan: 28,000 G updates (359 epochs) with a weight average and the rates
# decaying over the second half, Dropout2d(0.25) after each of D's
# convolutions and a G that upsamples (nearest x2, then a 3x3 convolution)
# instead of transposed convolutions: FLD 4.14 with the rarest digit at
# 4.1 % (20,000 G updates: 4.20; 12,000: 4.70 and 3.9 %), where 12,000
# without them gave 6.40 (rarest 2.2 %) and 25 constant-rate epochs 7.87.
dcgan:
	rm -rf $(RUNS)/$@
	$(FIT) --variant dcgan --seed 1 --g-ema 0.999 --eval-every 20 --g-steps 28000 --lr-decay-start 0.5 \
	  --d-dropout 0.25 --g-resize upsample --out $(RUNS)/$@
	$(EXPORT)

# cgan: 20,000 G updates (257 epochs) with a weight average and the rates
# decaying over the second half: 99.9 % conditional accuracy, where 40
# constant-rate epochs gave 97.4 % and 10,000 G updates 98.9 %.
cgan:
	rm -rf $(RUNS)/$@
	$(FIT) --variant cgan --seed 1 --g-ema 0.999 --eval-every 20 --g-steps 20000 --lr-decay-start 0.5 \
	  --out $(RUNS)/$@
	$(EXPORT)

# Semi-supervised InfoGAN (after Spurr et al., 2017): Q's categorical head
# learns the digit of 10% of the real images (shifted/rotated a little), and
# from those alone (--q-fake-cat-weight 0), so category k draws digit k; the
# continuous codes stay unsupervised. A slower D (--lr-d 1e-4) and a light
# continuous-code weight (--lambda-cont 0.02) keep G from drifting late in
# training: with the defaults, D overpowers G and a continuous code learns
# to morph some digits into others (e.g. 7 into 3). Generator weights are
# averaged (--g-ema) and learning rates decay over the second half.
infogan:
	rm -rf $(RUNS)/$@
	$(FIT) --variant infogan --seed 1 --epochs 40 --g-ema 0.999 --lr-decay-start 0.5 \
	  --labelled-fraction 0.1 --q-fake-cat-weight 0 --lambda-cat 2 \
	  --lambda-cont 0.02 --lr-d 1e-4 --out $(RUNS)/$@
	$(EXPORT)

# Plain InfoGAN: no labels; category -> digit found afterwards by Hungarian
# matching with the project classifier. Chen et al.'s MNIST objective and
# D (their Table 1): Q's losses train the body it shares with D, a 1024-unit
# fully connected layer in that body, a unit-variance Gaussian for the
# continuous codes and lambda = 1 for both codes; G stays the bundled size
# (no 1024-unit layer: it would add 13 MB per file). 100 epochs: matched
# accuracy 73 % where Q training only its head (--q-head-only) gave 39 %.
infogan-unsupervised:
	rm -rf $(RUNS)/$@
	$(FIT) --variant infogan --seed 1 --epochs 100 --g-ema 0.999 --eval-every 3 --d-hidden 1024 \
	  --q-trains-body --q-fixed-variance --lambda-cat 1 --lambda-cont 1 --out $(RUNS)/$@
	$(EXPORT)

# ---------------------------------------------------------------------------
# The model zoo: every other variant on MNIST, small (width 16, 32-d z, no
# model.pt2) so the whole zoo stays a few megabytes. Seed 1 unless
# SEED_<name> says otherwise, generator weights averaged; 30 epochs unless
# EPOCHS_<name> says otherwise, plus any EXTRA_<name> flags.
SMALL := --width 16 --z-dim 32 --g-ema 0.999
ZOO_EXPORT = $(EXPORT) --no-torch-export
ZOO_MNIST := gan fgan wgan wgan-gp sngan lsgan ebgan vaegan bigan

# The MLP GAN of the original paper learns far more slowly than the
# convolutional ones: at 30 epochs its samples were still noise. Its D
# drops half of each hidden layer's units, as the paper's MNIST D did
# (--d-dropout 0.5, gan's default on images; spelled out here). 256 units,
# 300 epochs (23,400 G updates) with the learning rates decaying over the
# second half: FLD 10.2 where 128 units and 100 constant-rate epochs gave 17.2.
# Seed 2 of the same recipe: FLD 9.7 with the rarest digit at 2.4 % (seed 1:
# 10.2 and 2.5 %); the bundled model is seed 2.
EPOCHS_gan := 300
SEED_gan := 2
EXTRA_gan := --mlp-hidden 256 --d-dropout 0.5 --lr-decay-start 0.5 --eval-every 10
# EBGAN with the old fixed margin (1) left G's samples as noise after 30
# epochs; a hand-picked 0.3 with the pulling-away term gave digit shapes.
# Now the margin follows the real energy (MAGAN's rule, the default without
# --margin) and the pulling-away term is on by default (--pt-weight 0.1).
# 10,000 G updates with the rates decaying over the second half: FLD 3.81,
# where 40 constant-rate epochs (3,120 G updates) gave 7.83.
EXTRA_ebgan := --g-steps 10000 --lr-decay-start 0.5 --eval-every 20
# Both WGANs take 5 critic steps per G step, so an epoch is 16 G updates:
# after 100 epochs (1,560 G updates) their samples were still noise or grey
# strokes. Budgets in G updates, as their papers give them. wgan: 20,000,
# with the critic warm-up (100 critic steps before the first 25 G updates
# and every 500th, on by default), RMSprop at 1e-4 (twice the paper's 5e-5:
# at 5e-5 a 4,000-update run still drew strokes of 5 digits after 3,092)
# decaying over the last 40 %, and G upsampling instead of transposed
# convolutions (FLD 6.51, rarest digit 3.7 %; 10,000: 7.73; 5,000: 8.62 and
# 4.3 %, against 10.06 and 3.4 % with transposed ones). wgan-gp: 4,000,
# Adam at 2e-4 with beta = (0.5, 0.9) (an earlier short probe with
# 1e-4..4e-4 and these betas beat the old bundled model within 400 G
# updates).
EXTRA_wgan := --g-steps 20000 --lr-g 1e-4 --lr-d 1e-4 --lr-decay-start 0.6 --eval-every 20 --g-resize upsample
EXTRA_wgan-gp := --g-steps 4000 --lr-g 2e-4 --lr-d 2e-4 --beta1 0.5 --beta2 0.9

# Budgets in G updates with the learning rates decaying linearly over the
# second half; at 30 constant-rate epochs (2,340 G updates) lsgan scored FLD
# 9.23, sngan 9.69 and fgan 9.00. All three with Dropout2d(0.25) in D and
# the upsampling G (DU below), as dcgan. lsgan: 20,000, FLD 4.88 with the
# rarest digit at 3.4 % (28,000: 4.95, no better; 16,000: 4.98; 12,000:
# 5.22; without DU, 6,000 gave 6.08 and 3.4 %, 16,000 5.83 but digit 4 at
# 2.1 %). sngan: 20,000, FLD 3.83 and 5.5 % (16,000: 4.17; 12,000: 4.63;
# 4.94 without DU). fgan (Jensen-Shannon): 28,000, 4.71 and 3.4 % (36,000:
# 4.74, no better; 20,000: 5.26; 16,000: 5.57; 12,000: 5.97; 5.99 and 2.8 %
# without DU).
DU := --d-dropout 0.25 --g-resize upsample
EXTRA_lsgan := --g-steps 20000 --lr-decay-start 0.5 --eval-every 20 $(DU)
EXTRA_sngan := --g-steps 20000 --lr-decay-start 0.5 --eval-every 20 $(DU)
EXTRA_fgan := --g-steps 28000 --lr-decay-start 0.5 --eval-every 20 $(DU)
# vaegan: 6,000 G updates, decaying over the second half, with the
# upsampling G: FLD 7.90 (transposed convolutions: 8.66; 30 constant-rate
# epochs: 10.08; 12,000 G updates: 7.68 with digit 1 at 1.2 %). Its D
# takes no dropout: D's features are the reconstruction target.
EXTRA_vaegan := --g-steps 6000 --lr-decay-start 0.5 --eval-every 20 --g-resize upsample
# bigan: 12,000 G updates, decaying over the second half, with the upsampling
# G and dropout in every layer of its joint D: FLD 3.11, rarest digit 3.2 %
# (without the dropout: 6,000 gave 5.35, 12,000 5.46 with digit 4 at 2.2 %;
# 30 constant-rate epochs: 7.66).
EXTRA_bigan := --g-steps 12000 --lr-decay-start 0.5 --eval-every 20 $(DU)

$(ZOO_MNIST):
	rm -rf $(RUNS)/$@
	$(FIT) --variant $@ --seed $(or $(SEED_$@),1) --epochs $(or $(EPOCHS_$@),30) $(SMALL) $(EXTRA_$@) --out $(RUNS)/$@
	$(ZOO_EXPORT)

# A conditional GAN on the full Fashion-MNIST (Debian's dataset-fashion-mnist),
# so that `--label sneaker` works by class name. With a 32-d z it ignored z
# (one image per class); a 100-d z keeps the samples varied.
cgan-fashion:
	rm -rf $(RUNS)/$@
	$(TRAIN) fit --dataset fashion-mnist --device $(DEVICE) --threads $(THREADS) --no-progress \
	  --variant cgan --seed 1 --epochs 8 --width 16 --z-dim 100 --g-ema 0.999 --out $(RUNS)/$@
	$(ZOO_EXPORT)

# 2-D mixtures, judged by the PacGAN/VEEGAN protocol over $(TOY_SEEDS): every
# seed is exported to $(RUNS)/toy-repo; the best seed is bundled. Targets are
# VARIANT-DATASET. On the 25-mode grid the plain GAN kept to about 11 modes in
# a 20-epoch trial; VAE-GAN's encoder/reconstruction term spreads it out.
# The ring GAN's D judges pairs of samples (PacGAN's --pack 2), which is what
# keeps PacGAN's GANs from dropping modes; VAE-GAN's D cannot pack (its
# features of each sample are that sample's reconstruction target).
TOY_SEEDS := 1 2 3 4 5
TOYS := gan-ring8 vaegan-grid25
TOY_EPOCHS_gan-ring8 := 20
TOY_EPOCHS_vaegan-grid25 := 10
TOY_EXTRA_gan-ring8 := --pack 2
TOY_RUNS := $(foreach t,$(TOYS),$(foreach s,$(TOY_SEEDS),toy-$(t)-$(s)))
toy_name = $(subst -$(lastword $(subst -, ,$*)),,$*)

$(TOY_RUNS): toy-%:
	rm -rf $(RUNS)/toys/$*
	$(TRAIN) fit --dataset $(word 2,$(subst -, ,$*)) --device $(DEVICE) --threads $(THREADS) --no-progress \
	  --variant $(word 1,$(subst -, ,$*)) --seed $(lastword $(subst -, ,$*)) \
	  --epochs $(TOY_EPOCHS_$(toy_name)) --g-ema 0.999 --lr-decay-start 0.5 $(TOY_EXTRA_$(toy_name)) \
	  --out $(RUNS)/toys/$*
	$(TRAIN) export $(RUNS)/toys/$* --repo $(RUNS)/toy-repo \
	  --name $(toy_name) --version $(lastword $(subst -, ,$*)) --overwrite --no-torch-export

$(TOYS): %: $(foreach s,$(TOY_SEEDS),toy-%-$(s))
	$(TRAIN) zoo-seeds $@ --runs $(RUNS)/toys --toy-repo $(RUNS)/toy-repo --repo $(MODELS) \
	  --version $(VERSION) --eval-dir $(EVAL_DIR)

HEADLINE := dcgan cgan infogan infogan-unsupervised
ZOO := $(ZOO_MNIST) cgan-fashion $(TOYS)

.PHONY: all zoo eval table classifier classifier-fashion $(HEADLINE) $(ZOO) $(TOY_RUNS)

all: $(HEADLINE) $(ZOO)
	$(MAKE) -f models.mk PY=$(PY) table

zoo: all

# `gan-train eval` on every bundled model, kept as JSON beside the table.
eval:
	mkdir -p $(EVAL_DIR)
	for m in $(HEADLINE) $(ZOO_MNIST) cgan-fashion $(TOYS); do \
	  $(TRAIN) eval $(MODELS)/$$m/$(VERSION) --out $(EVAL_DIR)/$$m.json || exit 1; done
	$(TRAIN) eval $(MODELS)/infogan/$(VERSION) --min-accuracy 0.97 --min-worst 0.90

table: eval
	$(TRAIN) zoo-table $(EVAL_DIR) --models $(MODELS) --out docs/model-zoo.md --readme README.md

classifier:
	$(TRAIN) classifier --seed 0 --epochs 30 --threads 1 \
	  --out training/gan_training/assets/mnist_classifier.pt

classifier-fashion:
	$(TRAIN) classifier --dataset fashion-mnist --seed 0 --epochs 4 --threads 1 \
	  --out training/gan_training/assets/fashion-mnist_classifier.pt
