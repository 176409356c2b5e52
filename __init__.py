"""ComfyUI-FlowSearch: reward-guided inference-time scaling for flow models (V3 node pack).

ComfyUI finds `comfy_entrypoint`; everything ComfyUI-specific is imported inside it, so this package (and
`sampling`, `rewards`) can be imported without ComfyUI."""

# The frontend extension (web/flowsearch.js: run summaries and candidate scores on the nodes). ComfyUI reads this
# module attribute for V3 packs too (nodes.py load_custom_node, before comfy_entrypoint).
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from comfy_api.latest import ComfyExtension

    from .nodes import options_node, playground_nodes, reward_nodes, sampling_nodes, search_nodes

    class FlowSearchExtension(ComfyExtension):
        async def get_node_list(self):
            return [*sampling_nodes.NODES, *search_nodes.NODES, *reward_nodes.NODES, *playground_nodes.NODES,
                    *options_node.NODES]

    return FlowSearchExtension()
