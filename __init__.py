"""ComfyUI-FlowSearch: reward-guided inference-time scaling for flow models (V3 node pack).

ComfyUI finds `comfy_entrypoint`; everything ComfyUI-specific is imported inside it, so this package (and
`sampling`, `rewards`) can be imported without ComfyUI."""


async def comfy_entrypoint():
    from comfy_api.latest import ComfyExtension

    from .nodes import playground_nodes, reward_nodes, sampling_nodes, search_nodes

    class FlowSearchExtension(ComfyExtension):
        async def get_node_list(self):
            return [*sampling_nodes.NODES, *search_nodes.NODES, *reward_nodes.NODES, *playground_nodes.NODES]

    return FlowSearchExtension()
