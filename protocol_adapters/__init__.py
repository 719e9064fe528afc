"""Framework adapters over the T4DM engine: LangChain, LangGraph and LlamaIndex.

Import the submodule for your framework; nothing here imports a framework eagerly::

    from protocol_adapters.langchain import T4DMVectorStore
    from protocol_adapters.langgraph import T4DMStore
    from protocol_adapters.llama_index import T4DMVectorStore
"""

__all__: list[str] = []
