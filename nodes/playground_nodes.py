"""FlowSearch Playground nodes (V3): the shipped trained FLUX + caption encoder + pixel VAE, and the weight-free
Count Objects Reward. The objects themselves are built in playground/comfy_glue.py."""
from comfy_api.latest import io

from ..playground import comfy_glue
from ..rewards import comfy_glue as reward_glue
from ..rewards.base import RewardError
from ..rewards.count_objects import CountObjectsReward
from .sampling_nodes import CATEGORY
from .types import REWARD

PLAYGROUND_CATEGORY = f"{CATEGORY}/playground"
GRAMMAR = ("'<count> <colour> <shape> and <count> <colour> <shape>', counts one..six, colours red/green/blue, "
           "shapes squares/crosses, e.g. 'three red squares and two blue crosses'")


class FlowSearchPlaygroundLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        files = comfy_glue.weight_files()
        return io.Schema(
            node_id="FlowSearchPlaygroundLoader", display_name="FlowSearch Playground Loader",
            category=PLAYGROUND_CATEGORY,
            description="A small FLUX (ComfyUI's own Flux class, 2.3 M parameters) trained on a world of coloured "
                        "squares and crosses, shipped with the pack: try inference-time search on any machine, CPU "
                        "included. Use EmptySD3LatentImage at 128×128 and the stock CLIPTextEncode with a caption "
                        f"like {GRAMMAR.split('e.g. ')[1]}.",
            inputs=[io.Combo.Input("weights", options=files or ["(none shipped)"], default=(files or [""])[0],
                                   tooltip="The shipped playground weights (playground/weights in the pack).")],
            outputs=[io.Model.Output(display_name="playground model",
                                     tooltip="The playground FLUX (a FLUX.1-schnell-type flow model): wire it into "
                                             "FlowSearch or any sampler."),
                     io.Clip.Output(display_name="caption encoder",
                                    tooltip="The playground caption encoder for the stock CLIPTextEncode. Grammar: "
                                            + GRAMMAR),
                     io.Vae.Output(display_name="pixel VAE",
                                   tooltip="Lossless pixel VAE: 16-channel FLUX latents, 8× (128×128 pictures from a "
                                           "128×128 empty latent).")])

    @classmethod
    def execute(cls, weights) -> io.NodeOutput:
        path = comfy_glue.weights_path(weights)
        return io.NodeOutput(comfy_glue.load_model(path), comfy_glue.load_clip(), comfy_glue.load_vae())


class FlowSearchCountObjectsReward(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchCountObjectsReward", display_name="Count Objects Reward (FlowSearch Playground)",
            category=f"{CATEGORY}/rewards",
            description="Weight-free counting reward for the playground: counts squares and crosses per colour and "
                        "returns −Σ(count − target)² (the paper's −RSS; 0 = every count right). Targets are read "
                        "from the FlowSearch prompt, or from 'targets'. Reports also show a stricter held-out "
                        "counter, so reward hacking is visible.",
            inputs=[io.String.Input("targets", default="", multiline=False,
                                    tooltip="Leave empty to read the targets from the prompt. Otherwise the counts "
                                            "to reach, in the caption grammar: " + GRAMMAR + " (up to six groups).")],
            outputs=[REWARD.Output(display_name="count objects reward",
                                   tooltip="−RSS of the counts (higher is better, 0 = exact): connect it to "
                                           "FlowSearch's reward input.")])

    @classmethod
    def execute(cls, targets) -> io.NodeOutput:
        try:
            return io.NodeOutput(reward_glue.manage(CountObjectsReward(targets)))  # Cancel between minibatches
        except RewardError as e:
            raise ValueError(str(e)) from None


NODES = [FlowSearchPlaygroundLoader, FlowSearchCountObjectsReward]
