"""Default values of every key the core knows; detector projects add their own section on top.

Sizes follow the BEVFormer / DETR3D references (embed 256, 900 queries, pc_range ±51.2 m); the files in
`projects/<Name>/configs/` override what each of the paper's settings changes.
"""

from fvcore.common.config import CfgNode as CN

from fd3d.data.classes import DETECTION_CLASSES

_C = CN()
_C.SEED = 0
_C.OUTPUT_DIR = "work/output"

_C.MODEL = CN()
_C.MODEL.META_ARCHITECTURE = "BEVFormer"
# Weights to start from or to evaluate: a folder written by fd3d.hub.save_pretrained or a Hub id (org/name).
_C.MODEL.WEIGHTS = ""
# ImageNet statistics in 0..255, in the channel order of INPUT.FORMAT (what torchvision / transformers
# ResNets were trained with; mmdet's caffe-style ResNets: BGR, mean [103.53, 116.28, 123.675], std 1).
_C.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]
_C.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]
# [x0, y0, z0, x1, y1, z1] in the LiDAR frame: the BEV grid and the box-centre normalisation span it.
_C.MODEL.POINT_CLOUD_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.DEPTHS = [3, 4, 6, 3]
_C.MODEL.BACKBONE.HIDDEN_SIZES = [256, 512, 1024, 2048]
_C.MODEL.BACKBONE.EMBEDDING_SIZE = 64
_C.MODEL.BACKBONE.LAYER_TYPE = "bottleneck"
_C.MODEL.BACKBONE.OUT_STAGES = [2, 3, 4]
# "" = random initialisation; else a Hub id (microsoft/resnet-50) or a local folder in transformers format.
_C.MODEL.BACKBONE.PRETRAINED = ""
_C.MODEL.BACKBONE.DCN_STAGES = []
_C.MODEL.BACKBONE.FROZEN_STAGES = 1
_C.MODEL.BACKBONE.NORM_EVAL = True
# Where a bottleneck's stride sits (mmdet's `style`): "pytorch" on the 3x3 conv, "caffe" on the first 1x1.
_C.MODEL.BACKBONE.STYLE = "pytorch"
# DCNv2 modulation = DCN_MASK_SCALE * sigmoid(m): 2 keeps a converted conv's output at init (fd3d's
# default), 1 is mmcv's ModulatedDeformConv2dPack (official BEVFormer / DETR3D checkpoints).
_C.MODEL.BACKBONE.DCN_MASK_SCALE = 2.0

_C.MODEL.FPN = CN()
_C.MODEL.FPN.OUT_CHANNELS = 256
_C.MODEL.FPN.NUM_OUTS = 4

# The detection-transformer decoder shared by BEVFormer and DETR3D.
_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.NUM_QUERIES = 900
_C.MODEL.HEAD.NUM_LAYERS = 6
_C.MODEL.HEAD.EMBED_DIMS = 256
_C.MODEL.HEAD.NUM_HEADS = 8
_C.MODEL.HEAD.FFN_DIMS = 512
_C.MODEL.HEAD.DROPOUT = 0.1
_C.MODEL.HEAD.CLS_WEIGHT = 2.0
_C.MODEL.HEAD.BOX_WEIGHT = 0.25
_C.MODEL.HEAD.FOCAL_ALPHA = 0.25
_C.MODEL.HEAD.FOCAL_GAMMA = 2.0
# (cx, cy, log w, log l, cz, log h, sin, cos, vx, vy): velocity counts less, as in the references.
_C.MODEL.HEAD.CODE_WEIGHTS = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2]
_C.MODEL.HEAD.MAX_DETECTIONS = 300
_C.MODEL.HEAD.POST_CENTER_RANGE = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]
# Linear-LayerNorm-ReLU blocks before the class logits (the official heads: num_reg_fcs = 2).
_C.MODEL.HEAD.CLS_HIDDEN_LAYERS = 1
# First-layer reference points: "learned" (free logits, initialised on a ground grid: learns at once from
# scratch on a CPU) or "query_pos" (sigmoid(Linear(query_pos)), the official BEVFormer / DETR3D head).
_C.MODEL.HEAD.REFERENCE_POINTS = "learned"

_C.INPUT = CN()
# (H, W) the images are resized to before the backbone.
_C.INPUT.IMAGE_SIZE = [900, 1600]
# Channel order the backbone reads (detectron2's INPUT.FORMAT): "RGB" or "BGR" (mmdet caffe-style).
_C.INPUT.FORMAT = "RGB"
# How images of another size are resized, by the data loader and by the model (fd3d.data.resize):
# "antialias" (fd3d's) or "cv2_bilinear" (mmcv.imresize, the official pipelines'; converted official
# checkpoints get it).
_C.INPUT.RESIZE = "antialias"
# Zero-pad the normalised images at the bottom and right to a multiple of this (0: no padding). The
# official models pad to 32 and divide projected pixels by the padded size, which is where the features
# lie, so fd3d does the same whenever it pads.
_C.INPUT.SIZE_DIVISIBILITY = 0

_C.DATASETS = CN()
_C.DATASETS.DATAROOT = "work/data/synthetic"
_C.DATASETS.VERSION = "v1.0-trainval"
_C.DATASETS.TRAIN_SPLIT = "train"
_C.DATASETS.TEST_SPLIT = "val"
_C.DATASETS.CLASSES = list(DETECTION_CLASSES)
# Where samples come from: "dataroot" (the map-style loader over DATAROOT), "parquet" (a `datasets` stream
# of the Parquet shards in the folder SHARDS, written by tools/export_hf_dataset.py) or "hub" (the same
# shards in the Hub dataset repository SHARDS at REVISION). Streams still score with DATAROOT's tables.
_C.DATASETS.SOURCE = "dataroot"
_C.DATASETS.SHARDS = ""
_C.DATASETS.REVISION = ""

# Knowledge distillation (fd3d.distill). An empty LOSSES list trains the model alone.
_C.DISTILL = CN()
_C.DISTILL.EXPERT = CN()
# The expert's own config (relative paths are relative to the file that sets them) ...
_C.DISTILL.EXPERT.CONFIG_FILE = ""
# ... or its trained weights: a model folder (fd3d.hub.save_pretrained) or a Hub id (org/name), whose own
# config.json then describes the expert and CONFIG_FILE is not read. Neither: a random expert (tests only).
_C.DISTILL.EXPERT.WEIGHTS = ""
_C.DISTILL.EXPERT.REVISION = ""
# A folder where the frozen expert's features are stored per sample and read back on later epochs (off
# when ""). Valid because the expert is frozen and the data unaugmented; a cached step then costs about
# what an apprentice step costs.
_C.DISTILL.EXPERT.FEATURE_CACHE = ""
# KEY VALUE overrides applied to the expert's config.
_C.DISTILL.EXPERT.OPTS = []
# A controlled imperfect expert (fd3d.distill.ray_artifacts): each ground-truth object's BEV feature is
# added, times STRENGTH, to the cells behind it along the ray from the ego, up to LENGTH metres beyond its
# centre, decaying as exp(-distance / DECAY). 0 = the expert as it is. Applied after the feature cache.
_C.DISTILL.EXPERT.RAY_ARTIFACTS = CN()
_C.DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH = 0.0
_C.DISTILL.EXPERT.RAY_ARTIFACTS.LENGTH = 10.0
_C.DISTILL.EXPERT.RAY_ARTIFACTS.DECAY = 4.0
# Names of registered methods (fd3d.distill.DISTILL_LOSS_REGISTRY: fitnet, cwd, mgd, smgd, qfd, heatmap, and
# any a plug-in registers), each configured by its section below. FD3D = [smgd, qfd].
_C.DISTILL.LOSSES = []
# Multipliers of every distillation term by the stage of the apprentice feature it distils, on top of each
# method's own weights: a study calibrates them so that each stage's terms carry a stated fraction of the
# detection loss's gradient at that stage (PV and BEV gradients differ by orders of magnitude at CPU scale).
_C.DISTILL.STAGE_SCALE = CN()
_C.DISTILL.STAGE_SCALE.PV = 1.0
_C.DISTILL.STAGE_SCALE.BEV = 1.0
# Multipliers of one method's terms at one stage, on top of STAGE_SCALE: entries "LOSS:STAGE=SCALE" (e.g.
# "smgd:bev=15.4"). Where a stage holds several methods' terms (FD3D's BEV: SMGD and QFD), a stage scale
# keeps their ratio at the paper's weights; these set each method's share of the stage on its own.
_C.DISTILL.LOSS_STAGE_SCALE = []
# How an apprentice feature of lower resolution meets the expert's (Table 4d): "deconv" upsamples the
# apprentice with a transposed convolution, "downsample" average-pools the expert.
_C.DISTILL.ALIGNMENT = "deconv"

# The distillation head (Eq. 1-2): queries on the expert's BEV (or PV for BEV-free detectors).
_C.DISTILL.HEAD = CN()
_C.DISTILL.HEAD.NUM_QUERIES = 900
_C.DISTILL.HEAD.NUM_HEADS = 8
_C.DISTILL.HEAD.NUM_POINTS = 4
_C.DISTILL.HEAD.FFN_DIMS = 512
# Decoder layers with iterative box refinement. QFD samples where the last layer looks: around the box the
# previous layer estimated from the expert feature, so the locations depend on the input (Sec. 3.1, 3.3).
# 1 = a single layer with static reference points and offsets (fd3d 0.1; the same locations every input).
_C.DISTILL.HEAD.NUM_LAYERS = 3
# BEV mode: offsets of layers after the first in units of the previous layer's box, rotated with its yaw
# (Deformable DETR's box-reference mode), so the initial ring of samples lies on the estimated object.
_C.DISTILL.HEAD.BOX_REFERENCE = True
# alpha and beta of Eq. 2: focal-class and L1-box weights of matching and of L_dh.
_C.DISTILL.HEAD.CLS_WEIGHT = 2.0
_C.DISTILL.HEAD.BOX_WEIGHT = 0.25
# Focal queries: matched, confidence > rho_c and BEV GIoU with their ground truth > rho_b (our defaults;
# the paper does not publish them).
_C.DISTILL.HEAD.CONF_THRESH = 0.3
_C.DISTILL.HEAD.GIOU_THRESH = 0.3
# Steps that train the distillation head alone on the frozen expert before the apprentice starts (0: the
# head is trained only jointly with the apprentice, as in the paper). The head depends only on the expert
# and the train data; trained from scratch on a short schedule it finds no focal query for a while.
_C.DISTILL.HEAD.PRETRAIN_ITERS = 0

# Selective masked generative distillation (Eq. 3-9): weight lambda, mask ratio r, temperature tau.
_C.DISTILL.SMGD = CN()
_C.DISTILL.SMGD.WEIGHT = 0.25
_C.DISTILL.SMGD.RATIO = 0.5
_C.DISTILL.SMGD.TAU = 2.0
_C.DISTILL.SMGD.STAGES = ["pv", "bev"]
# "focal": masks from focal queries (FD3D); "gt": from ground-truth boxes (Table 4a, mask on GT).
_C.DISTILL.SMGD.MASKS = "focal"

# Query-based focal distillation (Eq. 10-14): weight eta.
_C.DISTILL.QFD = CN()
_C.DISTILL.QFD.WEIGHT = 0.001
# min-max normalisation of the samples (Eq. 14): "query" over each focal query's M*K*C samples,
# "channel" over its M*K samples per channel
_C.DISTILL.QFD.NORMALIZE = "query"
# "aligner": the aligned apprentice map (deconvolution when its grid is smaller) is sampled; "linear": the
# apprentice's own map is sampled at the same normalised locations and a 1x1 adapter maps the samples
_C.DISTILL.QFD.ADAPTER = "aligner"

# Baselines (Table 2-4) sharing the same plumbing.
_C.DISTILL.CWD = CN()
_C.DISTILL.CWD.WEIGHT = 0.25
_C.DISTILL.CWD.TAU = 2.0
_C.DISTILL.CWD.STAGES = ["pv", "bev"]
_C.DISTILL.FITNET = CN()
_C.DISTILL.FITNET.WEIGHT = 1.0
_C.DISTILL.FITNET.STAGES = ["pv", "bev"]
_C.DISTILL.MGD = CN()
_C.DISTILL.MGD.WEIGHT = 2e-5
_C.DISTILL.MGD.RATIO = 0.65
_C.DISTILL.MGD.STAGES = ["pv", "bev"]
# The released HeatmapDistiller: CWD on every paired PV level + L2 on the BEV inside a Gaussian heatmap
# of ground-truth boxes, divided by the heatmap's sum.
_C.DISTILL.HEATMAP = CN()
_C.DISTILL.HEATMAP.PV_WEIGHT = 0.25
_C.DISTILL.HEATMAP.BEV_WEIGHT = 0.1
_C.DISTILL.HEATMAP.TAU = 2.0

# Training (fd3d.engine): AdamW with linear warm-up and cosine decay to zero, as the reference recipes.
_C.SOLVER = CN()
_C.SOLVER.MAX_ITER = 1000
_C.SOLVER.IMS_PER_BATCH = 1  # per process
_C.SOLVER.BASE_LR = 2e-4
# Pretrained backbones learn ten times slower (BEVFormer / DETR3D recipes).
_C.SOLVER.BACKBONE_LR_FACTOR = 0.1
_C.SOLVER.WEIGHT_DECAY = 0.01
_C.SOLVER.WARMUP_ITERS = 500
_C.SOLVER.GRAD_CLIP = 35.0  # max gradient norm; 0 disables clipping
_C.SOLVER.GRAD_ACCUM_STEPS = 1
# "no", "fp16" or "bf16"; "" defers to `accelerate config` / `accelerate launch --mixed_precision`.
_C.SOLVER.MIXED_PRECISION = ""
_C.SOLVER.CHECKPOINT_PERIOD = 500
_C.SOLVER.MAX_CHECKPOINTS_KEPT = 2
_C.SOLVER.LOG_PERIOD = 20

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 0
# Shuffle training samples (per seed and epoch); off, both sources read the split in the same order.
_C.DATALOADER.SHUFFLE = True

_C.TEST = CN()
# Evaluate every EVAL_PERIOD steps (0: only at the end).
_C.TEST.EVAL_PERIOD = 0
_C.TEST.IMS_PER_BATCH = 1
# How a temporal detector (BEVFormer with QUEUE_LENGTH > 0) gets its history at evaluation:
# "queue": the QUEUE_LENGTH previous keyframes are encoded again for every sample (how fd3d's models
#   train; any sample order, IMS_PER_BATCH samples at a time);
# "scene": the official test protocol (BEVFormer's forward_test): each frame is encoded once and its BEV
#   carried to the scene's next frame, reset on a new scene; whole scenes per process, one frame at a
#   time. Converted official checkpoints get "scene".
# "" (default): the model's own, from the config it was saved with ("queue" where that says nothing).
_C.TEST.TEMPORAL_PROTOCOL = ""
