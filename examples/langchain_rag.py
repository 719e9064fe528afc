"""A LangChain RAG chain over T4DM: retriever | format docs | prompt | LLM | output parser.

Runs offline: the documents are short descriptions of standard-library modules, the
embedder is the store's packaged all-MiniLM-L6-v2 (``T4DMVectorStore(embedding=None)``),
and the LLM is LangChain's ``FakeListLLM``: it returns canned answers, so what the output
shows for real is what the retriever found for each question (with an optional metadata
filter) and how the chain threads documents, prompt and answer together.

    python examples/langchain_rag.py [--store DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from operator import itemgetter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

from protocol_adapters.langchain import T4DMVectorStore

DOCUMENTS = [
    Document(id="csv", page_content="The csv module reads and writes tabular data in comma-separated values files, "
             "row by row, with csv.reader, csv.writer and csv.DictReader.", metadata={"topic": "data formats"}),
    Document(id="json", page_content="The json module encodes Python dicts and lists as JSON text with json.dumps and "
             "decodes JSON strings back with json.loads.", metadata={"topic": "data formats"}),
    Document(id="timeit", page_content="The timeit module measures the execution time of small code snippets, "
             "running them many times to get reliable timings.", metadata={"topic": "debugging and profiling"}),
    Document(id="sqlite3", page_content="The sqlite3 module is an interface to SQLite, a lightweight disk-based "
             "SQL database that needs no separate server process.", metadata={"topic": "data persistence"}),
    Document(id="heapq", page_content="The heapq module implements the heap queue (priority queue) algorithm on "
             "plain lists: heappush, heappop and nsmallest.", metadata={"topic": "data types"}),
    Document(id="zipfile", page_content="The zipfile module creates, reads, writes and lists ZIP archives.",
             metadata={"topic": "data compression and archiving"}),
]
QUESTIONS = [
    ("How do I read rows from a comma-separated spreadsheet export?", None),
    ("How can I time how long a short piece of code takes to run?", None),
    ("Which module turns a dictionary into text?", {"topic": "data formats"}),
]
ANSWERS = [
    "Use csv.reader (or csv.DictReader for named columns) on the opened file.",
    "Use timeit: it runs the snippet many times and reports the time.",
    "json.dumps turns a dict into a JSON string.",
]
PROMPT = PromptTemplate.from_template(
    "Answer the question using only this context.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:")


def format_docs(docs: list[Document]) -> str:
    return "\n".join(f"[{doc.id}] {doc.page_content}" for doc in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="store directory (default: a temporary store)")
    args = parser.parse_args()

    llm = FakeListLLM(responses=ANSWERS)
    with T4DMVectorStore(path=args.store) as vectorstore:
        vectorstore.add_documents(DOCUMENTS)
        print(f"indexed {len(DOCUMENTS)} documents with {type(vectorstore.store.embedder).__name__}")
        for question, metadata_filter in QUESTIONS:
            retriever = vectorstore.as_retriever(k=2, filter=metadata_filter)
            answer_chain = ({"context": itemgetter("docs") | RunnableLambda(format_docs),
                             "question": itemgetter("question")} | PROMPT | llm | StrOutputParser())
            rag = RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(answer=answer_chain)
            result = rag.invoke(question)
            print(f"\nquestion: {question}" + (f"  (filter: {metadata_filter})" if metadata_filter else ""))
            for doc in result["docs"]:
                print(f"  retrieved [{doc.id}] ({doc.metadata['topic']}) {doc.page_content[:60]}...")
            print(f"answer: {result['answer']}")


if __name__ == "__main__":
    main()
